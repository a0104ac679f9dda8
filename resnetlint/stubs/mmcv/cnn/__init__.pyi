# Contract of mmcv 2.x: mmcv.cnn re-exports the layer builders of mmcv.cnn.bricks.
from .bricks import (ConvModule, DepthwiseSeparableConvModule, DropPath, Scale, build_activation_layer,
                     build_conv_layer, build_dropout, build_norm_layer, build_upsample_layer)
