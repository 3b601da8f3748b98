"""The Textual app: chat, runs and stage graph, transcripts, prompts, themes."""
