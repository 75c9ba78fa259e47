"""Use cases over the ports: ingress now; the runtime, tool gateway and delivery next."""
