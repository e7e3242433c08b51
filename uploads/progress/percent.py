"""Progress as a percentage, cut rather than rounded."""

from decimal import Decimal


def cut_percent(published: int, total: int) -> Decimal | None:
    """published / total in percent, cut (not rounded) to two decimals; None when total is 0.

    Cut, so that 100.00 means every TPS is in: 290/293 is 98.97 (the public site rounds it up to
    98.98), and 292,999/293,000 stays 99.99.
    """
    if total == 0:
        return None
    return Decimal(published * 10_000 // total).scaleb(-2)
