"""`make chaos`: faults injected into a private platform under load, and what each one cost."""
