// Anchor so the layer library has a translation unit before its first sampler lands.
namespace genvis::schedulers {}
