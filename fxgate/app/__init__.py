"""The application: backends chosen by name, the node assembled from the settings.

``backends`` maps each backend name to a lazily imported builder, ``validation`` is the
one check of the settings that ``fxgate config check`` and start-up share, and
``assembly`` builds a :class:`fxgate.node.Node` whole. Only this package (and the CLI
above it) names concrete stores, buses and brokers.
"""
