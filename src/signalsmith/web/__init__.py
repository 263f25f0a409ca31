"""The dashboard at ``/``: a page and its assets, shipped in the package (no CDN, no build
step), that reads the query API and the live feed and changes nothing."""
