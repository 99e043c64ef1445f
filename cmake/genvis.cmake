# Shared settings for every genvis target.
set(GENVIS_SOURCE_ROOT ${CMAKE_SOURCE_DIR})

add_library(genvis_warnings INTERFACE)
target_compile_options(genvis_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)

# One precompiled header holding libtorch, built once and reused by every target that
# includes torch (a clean build on 2 cores would otherwise parse torch/torch.h in every file).
add_library(genvis_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/pch_anchor.cpp)
# libstdc++ is linked BEFORE libtorch: the pip/CUDA libtorch 2.x libtorch.so exports broken copies
# of std::filesystem symbols (remove_all jumps to address 0), and the first library in the
# needed list wins symbol lookup.
set(GENVIS_TORCH_LINK stdc++ ${TORCH_LIBRARIES})
target_link_libraries(genvis_pch PUBLIC ${GENVIS_TORCH_LINK} genvis_warnings)
target_include_directories(genvis_pch PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
if(GENVIS_USE_PCH)
  target_precompile_headers(genvis_pch PRIVATE <torch/torch.h> <string> <vector> <map> <memory> <optional>)
endif()

# genvis_add_layer(NAME SOURCES... DEPS ...): one static library per layer.
function(genvis_add_layer name)
  cmake_parse_arguments(L "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${L_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC ${L_DEPS} genvis_warnings)
  genvis_use_pch(${name})
endfunction()

function(genvis_use_pch target)
  if(GENVIS_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM genvis_pch)
    # The header was compiled as PIC (for libgenvis); executables would get -fPIE, which GCC
    # refuses to combine with it, silently parsing libtorch again in every file.
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      target_compile_options(${target} PRIVATE -fPIC)
    endif()
  endif()
  target_link_libraries(${target} PUBLIC ${GENVIS_TORCH_LINK})
endfunction()
