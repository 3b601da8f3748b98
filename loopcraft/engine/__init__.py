"""The outer loop: workflow definitions, the durable context, the runtime, the SQLite
journal, the stage graph, run control and events. Never imports the TUI."""
