"""Drawing: figures (Figure 5, map grids) in PNG, SVG and PDF and the overlays the front end draws (``render``,
torch-free: numpy, Pillow, matplotlib), and the atlas's static HTML page (``atlas_page``)."""
