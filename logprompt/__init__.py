"""logprompt core: what training, export and the streamer share.

Parsing (:mod:`logprompt.parsing`), record decoding (:mod:`logprompt.records`), source keys
(:mod:`logprompt.sources`), windows (:mod:`logprompt.windows`), prompt rendering
(:mod:`logprompt.prompts`), the record-to-window pipeline (:mod:`logprompt.pipeline`), presets
and data set loaders, the model bundle's manifest and the alert schema.
"""

__version__ = "0.1.0"
