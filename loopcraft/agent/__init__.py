"""The inner loop: one agent session (model + tools until it answers), its tools,
permissions, JSONL transcript, runtime budgets, loop detection, compaction and steering."""
