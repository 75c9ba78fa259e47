"""Entry points: the command line now; HTTP and web pages later."""
