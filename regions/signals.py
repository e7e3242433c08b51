"""What regions tells the apps above it, which connect to these (imports point down: regions
does not know them)."""

from django.dispatch import Signal

# A contest kind's candidates were replaced (sent once committed): kind=<the contest kind>.
candidates_replaced = Signal()
