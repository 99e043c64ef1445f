// Anchor translation unit: owns the shared precompiled header (see genvis.cmake).
