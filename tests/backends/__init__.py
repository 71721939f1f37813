"""One module per backend, each giving the contract suite its saver factories.

A module here defines ``FACTORIES: dict[str, SaverFactory]``: names (such as
``"sqlite"`` and ``"sqlite-async-class"``) mapped to context-manager factories
that take the pytest ``request`` (to reach server fixtures such as
``postgres_uri``) and yield a fresh, isolated saver.
"""
