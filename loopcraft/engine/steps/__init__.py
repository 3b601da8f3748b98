"""Step kinds: one small module per kind (task, chain, parallel, nested, tool, gate, merge, stage
prompt, check), all built on the one step protocol in :mod:`loopcraft.engine.steps.protocol`."""
