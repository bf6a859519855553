"""快检: the item catalogue, verdicts, intake, follow-up of positives, queries and exports."""
