"""Notify's outside world: the SMTP server and the telephony provider, behind small interfaces."""
