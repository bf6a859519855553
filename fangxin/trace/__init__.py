"""合格证 domain: certificates, rapid-test results and their verdicts, entry checks, recalls."""
