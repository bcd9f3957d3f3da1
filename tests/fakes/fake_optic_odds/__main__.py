"""python -m fake_optic_odds"""

from fake_optic_odds.cli import main

main()
