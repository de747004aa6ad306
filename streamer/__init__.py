"""The Kafka consumer group that scores log windows and writes alerts (``logprompt stream``)."""
