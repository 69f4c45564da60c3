"""Regional festival coupons: campaigns, codes, redemption at the bar, and the uplift they
caused. Pure logic here and in its modules; storage in the registry's database."""
