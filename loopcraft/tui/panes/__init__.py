"""The app's side panes: runs, stage graph, attached transcript, pending prompts."""
