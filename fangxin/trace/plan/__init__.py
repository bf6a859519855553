"""The city plan's figures: imported registers and counts, targets as data, KPIs per district."""
