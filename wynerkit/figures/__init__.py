"""The paper's Figure 1 panels and the tiling of image cells into one picture."""
