"""python -m hotspot_warmer"""

from hotspot_warmer.cli import main

main()
