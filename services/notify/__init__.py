"""The notify service: email, calls and SMS to complainants, behind the loop guard (docs/adr/0007)."""
