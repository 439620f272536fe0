"""The ports services define and adapters implement (DESIGN.md: "adapters implement ports
that services and hub define"), kept apart so an adapter imports its port and nothing of
the services that use it."""
