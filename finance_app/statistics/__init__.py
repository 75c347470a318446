"""Statistics monitoring: the platform operator's dashboard of the zone's trade and finance."""
