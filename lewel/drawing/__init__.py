"""Drawing: figures (Figure 5, map grids) in PNG, SVG and PDF and the overlays the front end draws (``render``,
torch-free: numpy, Pillow, matplotlib), the atlas's static HTML page (``atlas_page``), and the atlas as a folder
with its thumbnails and on-demand builds (``atlas_folder``). Drawing sits above ``lewel.maps``: it takes measured
records and arrays and may import the maps' names; the maps never import drawing."""
