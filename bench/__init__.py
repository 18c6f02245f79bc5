"""`make bench`: starts a private platform, drives it from a separate load process, measures it."""
