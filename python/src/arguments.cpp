#include "python/src/arguments.hpp"

#include <cmath>
#include <limits>

namespace mbmpo::python {

namespace {

bool is_bool(nb::handle value) {
  if (PyBool_Check(value.ptr())) return true;
  const std::string type = nb::cast<std::string>(nb::str(nb::handle(value.type()).attr("__name__")));
  return type == "bool_" || type == "bool";  // NumPy's bool (numpy.bool_, called numpy.bool in 2.x)
}

[[noreturn]] void type_error(const char* name, const std::string& expected, nb::handle value) {
  throw nb::type_error((std::string(name) + " must be " + expected + ", " + given(value)).c_str());
}

// The exact integer value of an object with __index__ (no bool), as a Python int.
nb::object index_of(nb::handle value, const char* name, const std::string& expected) {
  if (value.is_none() || is_bool(value) || !PyIndex_Check(value.ptr())) type_error(name, expected, value);
  PyObject* index = PyNumber_Index(value.ptr());
  if (!index) {  // e.g. a NumPy array, which has __index__ but is not one integer
    PyErr_Clear();
    type_error(name, expected, value);
  }
  return nb::steal(index);
}

}  // namespace

std::string given(nb::handle value) {
  std::string shown = nb::cast<std::string>(nb::repr(value));
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  return "got " + shown + " (" + nb::cast<std::string>(nb::str(nb::handle(value.type()).attr("__name__"))) + ")";
}

std::int64_t integer(const Arg<std::int64_t>& arg, const char* name, std::int64_t low, std::int64_t high) {
  const nb::object index = index_of(arg.object, name, "an integer");
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(index.ptr(), &overflow);
  if (overflow != 0 || value < low || value > high) {
    throw nb::value_error((std::string(name) + " must be in [" + std::to_string(low) + ", " + std::to_string(high) +
                           "], got " + nb::cast<std::string>(nb::repr(index)))
                              .c_str());
  }
  return value;
}

std::uint64_t seed(const Arg<std::uint64_t>& arg, const char* name) {
  const nb::object index = index_of(arg.object, name, "an integer in [0, 2**64)");
  const unsigned long long value = PyLong_AsUnsignedLongLong(index.ptr());
  if (PyErr_Occurred()) {  // negative, or 2**64 and above
    PyErr_Clear();
    throw nb::value_error(
        (std::string(name) + " must be in [0, 2**64), got " + nb::cast<std::string>(nb::repr(index))).c_str());
  }
  return value;
}

double real(const Arg<double>& arg, const char* name) {
  const nb::handle value = arg.object;
  if (value.is_none() || is_bool(value) || PyUnicode_Check(value.ptr()) || PyBytes_Check(value.ptr()) ||
      PyComplex_Check(value.ptr())) {
    type_error(name, "a real number", value);
  }
  double number = PyFloat_AsDouble(value.ptr());
  if (PyErr_Occurred()) {  // no __float__ (or __index__), or an int beyond every double
    const bool too_large = PyErr_ExceptionMatches(PyExc_OverflowError);
    PyErr_Clear();
    if (!too_large) type_error(name, "a real number", value);
    number = std::numeric_limits<double>::infinity();  // refused below as not finite
  }
  if (!std::isfinite(number)) {
    throw nb::value_error((std::string(name) + " must be finite, got " + nb::cast<std::string>(nb::repr(value))).c_str());
  }
  return number;
}

bool flag(const Arg<bool>& arg, const char* name) {
  if (!is_bool(arg.object)) type_error(name, "True or False", arg.object);
  return PyObject_IsTrue(arg.object.ptr()) == 1;
}

std::string text(const Arg<std::string>& arg, const char* name) {
  if (!PyUnicode_Check(arg.object.ptr())) type_error(name, "a str", arg.object);
  return nb::cast<std::string>(arg.object);
}

std::string file_path(const Arg<std::string>& arg, const char* name) {
  const nb::handle value = arg.object;
  if (!PyUnicode_Check(value.ptr()) && !PyObject_HasAttrString(value.ptr(), "__fspath__")) {
    type_error(name, "a str or an os.PathLike", value);
  }
  const nb::object path = nb::module_::import_("os").attr("fspath")(value);
  if (!PyUnicode_Check(path.ptr())) type_error(name, "a str path (not bytes)", path);
  return nb::cast<std::string>(path);
}

std::vector<int> integers(const Arg<std::vector<int>>& arg, const char* name, int low, int high) {
  const nb::handle value = arg.object;
  if (value.is_none() || PyUnicode_Check(value.ptr()) || PyBytes_Check(value.ptr()) ||
      !(PySequence_Check(value.ptr()) || PyObject_HasAttrString(value.ptr(), "__array__"))) {
    type_error(name, "a sequence of integers (e.g. [64, 64])", value);
  }
  std::vector<int> out;
  PyObject* iterator = PyObject_GetIter(value.ptr());
  if (!iterator) {  // e.g. a 0-d NumPy array
    PyErr_Clear();
    type_error(name, "a sequence of integers (e.g. [64, 64])", value);
  }
  Py_DECREF(iterator);
  for (nb::handle element : nb::iter(value)) {
    const std::string element_name = std::string(name) + "[" + std::to_string(out.size()) + "]";
    out.push_back(int(integer(Arg<std::int64_t>{nb::borrow(element)}, element_name.c_str(), low, high)));
  }
  return out;
}

}  // namespace mbmpo::python
