# Contract of mmengine 0.x (the module base classes model code derives from).
