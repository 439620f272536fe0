"""The store adapters: ``sqlite`` (the embedded default) and ``mongodb``, each one class
per area of the port ``fxgate.services.ports.store``, plus what both share (``codecs``
for the broker's records, ``rules`` for the input both refuse alike, ``factory``)."""
