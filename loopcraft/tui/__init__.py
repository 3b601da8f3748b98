"""The Textual app: chat, runs and stage graph, transcripts, prompts, themes."""

import os

# Textual redraws on a timer; at its default 60 fps a keystroke waits up to 17 ms for the
# next frame. Frames only happen when something changed, so 120 costs nothing when idle
# and halves that wait (read once, when Textual is first imported; the user's value wins).
os.environ.setdefault("TEXTUAL_FPS", "120")
