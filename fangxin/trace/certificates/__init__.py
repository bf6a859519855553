"""合格证: subjects, issuing, signing, labels, scans, entry checks, recalls, EPCIS, Digital Link."""
