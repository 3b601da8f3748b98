"""Model layer: model specs, the one streaming completion call (litellm), error
classification, retries and fallbacks, usage and cost, and the offline scripted model.

Nothing here imports litellm at import time; :mod:`loopcraft.models.litellm_loader` does
it on first use.
"""
