"""The ``router`` pipeline kind: one child pipeline per turn, picked by command, keywords,
regex, an open agent session, an ``llm`` route's model as classifier or the default, with a
fallback while a service is unavailable (DESIGN §16, seed 004 Story 4). ``decide`` is the
decision, pure; ``classify`` asks the classifier; ``RouterPipeline`` runs them; ``kind``
configures it.

Not to be confused with ``acf.pipelines.router``, the rules pipeline's intent router."""
