// Legal tiny tree (tests/layering): every include goes down or sideways within a layer.
#pragma once
#include <string>
