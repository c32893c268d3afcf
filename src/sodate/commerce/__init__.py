"""Commerce: orders with line items and open carts, from the Segment ecommerce events."""
