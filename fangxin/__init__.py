"""fangxin (放心): rapid tests, 合格证 and 明厨亮灶 uptime for city food-safety regulators."""

__version__ = "0.1.0"
