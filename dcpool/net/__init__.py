"""The trio shell: dialing (:mod:`.dial`), the one handshake driver (:mod:`.handshake`) and the
connection slot (:mod:`.connection`).  The one place where trio and socket exceptions become
dcpool errors; it knows nothing about DCs beyond its :class:`~.connection.ConnectionOwner`."""
