"""Bridges from real switches to noc's feed: `noc bridge kamailio` (kamailio.cfg is its switch
configuration)."""
