# Contract of mmcv 2.x (the parts model code builds layers with).
