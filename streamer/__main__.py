"""``python -m streamer``: the same as ``logprompt stream``."""

from streamer.cli import main

if __name__ == "__main__":
    main()
