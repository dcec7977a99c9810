"""HTTP edge: one blueprint per area. Views parse, authorise, call one service function and render."""
