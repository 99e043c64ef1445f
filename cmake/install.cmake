# `cmake --install build --prefix P` (or `ninja install`): the genvis binary, libgenvis with its
# headers and a CMake package (find_package(genvis) -> genvis::genvis), and the shipped models,
# which the binary and the library find in P/share/genvis/models.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS genvis RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The SentencePiece module that libgenvis and the binary open at run time (T5 tokenizers).
install(TARGETS genvis_sentencepiece LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/genvis)
install(TARGETS genvis_api EXPORT genvisTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/genvis/genvis.hpp ${CMAKE_SOURCE_DIR}/include/genvis/genvis.h
  ${CMAKE_BINARY_DIR}/include/genvis/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/genvis)
install(EXPORT genvisTargets NAMESPACE genvis:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/genvis)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/genvisConfig.cmake.in
  ${CMAKE_BINARY_DIR}/genvisConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/genvis)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/genvisConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/genvisConfig.cmake ${CMAKE_BINARY_DIR}/genvisConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/genvis)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/genvis/models OPTIONAL)
