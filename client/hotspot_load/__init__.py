"""`hotspot load`: load scenarios against a permit server, with a Markdown report and plots.

driver: the open-loop generator and its log (the ground truth); windows: the over-limit check
from that log alone; processes: one plan over several load processes.
"""
