"""Connections as data: which task each job runs, the schedules the registry asks for, and how
they are kept in EventBridge Scheduler."""
