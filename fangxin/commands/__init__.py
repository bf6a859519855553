"""Subcommands of `fangxin` grouped by area; each module defines register(main)."""
