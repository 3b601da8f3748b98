"""Event-driven loops: triggers (schedules, file watches, git hooks, webhooks) that start workflows,
a durable event inbox in the journal, and ``loopcraft serve``, which turns events into runs."""
