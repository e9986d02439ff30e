#include "scrapekeep/scrape/xpath_linear.hpp"

#include <libxml/tree.h>
#include <libxml/xpathInternals.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "scrapekeep/core/text.hpp"
#include "scrapekeep/scrape/xml_handles.hpp"

namespace scrapekeep::scrape {

bool starts_xpath_name(unsigned char c) {
  return std::isalpha(c) != 0 || c == '_' || c >= 0x80;
}
bool continues_xpath_name(unsigned char c) {
  return starts_xpath_name(c) || std::isdigit(c) != 0 || c == '-' || c == '.';
}

namespace {

using core::is_ascii_space;

// The operations xpath_with_linear_operators() writes, each as a call of
// count() whose last argument names it: `count(//a, //b, 'scrapekeep-union')`.
// libxml2 2.9 sorts every node-set given to a function in document order,
// a cost no step counts (comparing two text nodes walks their siblings back
// to an element: quadratic in a run of text and comments), except those
// given to count(), which needs no order. count() with one argument is
// libxml2's own (count_function); a selector cannot call it with more
// (xpath_error() refuses it).
constexpr char k_union[] = "scrapekeep-union";
constexpr char k_equal[] = "scrapekeep-equal";
constexpr char k_unequal[] = "scrapekeep-unequal";
constexpr char k_less[] = "scrapekeep-less";
constexpr char k_less_or_equal[] = "scrapekeep-less-or-equal";

// `operation` applied to `operands`, as xpath_with_linear_operators() writes it.
std::string call_of(const char* operation, const std::string& operands) {
  return "count(" + operands + ", '" + operation + "')";
}

// ---------------------------------------------------------------------------
// Reading an expression (XPath 1.0, sections 3.1 to 3.7)

// What xpath_with_linear_operators() cannot read: the expression is left as written.
struct Unreadable {};

enum class Kind {
  open_paren,
  close_paren,
  open_bracket,
  close_bracket,
  dot,
  dot_dot,
  at,
  comma,
  colons,
  name_test,  // `*`, `p:*`, a QName
  node_type,  // comment, text, processing-instruction, node before `(`
  function,   // a name before `(`
  axis,       // a name before `::`
  literal,
  number,
  variable,
  op,  // and or mod div * / // | + - = != < <= > >=
};

struct Token {
  Kind kind;
  std::size_t begin;
  std::size_t end;
};

// XPath 1.0's tokens (3.7), each with where it is in `text`.
std::vector<Token> tokenize(std::string_view text) {
  std::vector<Token> tokens;
  const std::size_t n = text.size();
  const auto at = [&](std::size_t i) { return i < n ? static_cast<unsigned char>(text[i]) : 0; };
  // 3.7: after an operand, `*` multiplies and a name is an operator.
  const auto after_operand = [&] {
    if (tokens.empty()) {
      return false;
    }
    const Kind last = tokens.back().kind;
    return last != Kind::at && last != Kind::colons && last != Kind::open_paren &&
           last != Kind::open_bracket && last != Kind::comma && last != Kind::op;
  };
  const auto name_end = [&](std::size_t i) {
    while (continues_xpath_name(at(i))) {
      ++i;
    }
    return i;
  };
  const auto next_after_spaces = [&](std::size_t i) {
    while (is_ascii_space(at(i))) {
      ++i;
    }
    return i;
  };
  std::size_t i = next_after_spaces(0);
  while (i < n) {
    const unsigned char c = at(i);
    const std::size_t begin = i;
    Kind kind = Kind::op;
    if (c == '(' || c == ')' || c == '[' || c == ']' || c == '@' || c == ',') {
      kind = c == '('   ? Kind::open_paren
             : c == ')' ? Kind::close_paren
             : c == '[' ? Kind::open_bracket
             : c == ']' ? Kind::close_bracket
             : c == '@' ? Kind::at
                        : Kind::comma;
      ++i;
    } else if (c == '.' && at(i + 1) == '.') {
      kind = Kind::dot_dot;
      i += 2;
    } else if (std::isdigit(c) != 0 || (c == '.' && std::isdigit(at(i + 1)) != 0)) {
      kind = Kind::number;
      while (std::isdigit(at(i)) != 0) {
        ++i;
      }
      if (at(i) == '.') {
        ++i;
        while (std::isdigit(at(i)) != 0) {
          ++i;
        }
      }
    } else if (c == '.') {
      kind = Kind::dot;
      ++i;
    } else if (c == ':' && at(i + 1) == ':') {
      kind = Kind::colons;
      i += 2;
    } else if (c == '\'' || c == '"') {
      const std::size_t close = text.find(static_cast<char>(c), i + 1);
      if (close == std::string_view::npos) {
        throw Unreadable();
      }
      kind = Kind::literal;
      i = close + 1;
    } else if (c == '$') {
      if (!starts_xpath_name(at(i + 1))) {
        throw Unreadable();
      }
      i = name_end(i + 1);
      if (at(i) == ':' && starts_xpath_name(at(i + 1))) {
        i = name_end(i + 1);
      }
      kind = Kind::variable;
    } else if (c == '*') {
      kind = after_operand() ? Kind::op : Kind::name_test;
      ++i;
    } else if (c == '/') {
      i += at(i + 1) == '/' ? 2 : 1;
    } else if (c == '|' || c == '+' || c == '-' || c == '=') {
      ++i;
    } else if (c == '!' && at(i + 1) == '=') {
      i += 2;
    } else if (c == '<' || c == '>') {
      i += at(i + 1) == '=' ? 2 : 1;
    } else if (starts_xpath_name(c)) {
      i = name_end(i);
      if (after_operand()) {
        const std::string_view name = text.substr(begin, i - begin);
        if (name != "and" && name != "or" && name != "mod" && name != "div") {
          throw Unreadable();
        }
      } else {
        kind = Kind::name_test;
        if (at(i) == ':' && at(i + 1) == '*') {
          i += 2;
        } else if (at(i) == ':' && starts_xpath_name(at(i + 1))) {
          i = name_end(i + 1);
        }
        const std::size_t next = next_after_spaces(i);
        if (at(next) == '(') {
          const std::string_view name = text.substr(begin, i - begin);
          kind = name == "comment" || name == "text" || name == "processing-instruction" ||
                         name == "node"
                     ? Kind::node_type
                     : Kind::function;
        } else if (at(next) == ':' && at(next + 1) == ':') {
          kind = Kind::axis;
        }
      }
    } else {
      throw Unreadable();
    }
    tokens.push_back({kind, begin, i});
    i = next_after_spaces(i);
  }
  return tokens;
}

// XPath 1.0's types, known before any page is read (a variable's is not,
// nor an extension function's).
enum class Type { nodes, boolean, number, string, unknown };

// What a call of XPath 1.0's function `name` gives (3.1, 4).
Type type_of_function(std::string_view name) {
  for (const char* f : {"boolean", "not", "true", "false", "lang", "contains", "starts-with"}) {
    if (name == f) {
      return Type::boolean;
    }
  }
  for (const char* f : {"last", "position", "count", "sum", "number", "string-length", "floor",
                        "ceiling", "round"}) {
    if (name == f) {
      return Type::number;
    }
  }
  for (const char* f : {"string", "concat", "substring-before", "substring-after", "substring",
                        "normalize-space", "translate", "local-name", "namespace-uri", "name"}) {
    if (name == f) {
      return Type::string;
    }
  }
  return name == "id" ? Type::nodes : Type::unknown;
}

// A part of the expression read: where it is in the text, what it becomes,
// and its type.
struct Part {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string written;
  Type type = Type::unknown;
  bool nodes() const { return type == Type::nodes; }
  // As a predicate: whether it may test a node's position (a number is
  // compared with it; what a variable or an unknown function gives may be one).
  bool positional() const { return type == Type::number || type == Type::unknown; }
};

// The text of a part that holds others, as they are written: what lies
// between them as it is in the expression.
class Splice {
 public:
  Splice(std::string_view text, std::size_t begin) : m_text(text), m_copied(begin) {}
  void take(const Part& inner) {
    m_written.append(m_text.substr(m_copied, inner.begin - m_copied));
    m_written += inner.written;
    m_copied = inner.end;
  }
  std::string finish(std::size_t end) {
    m_written.append(m_text.substr(m_copied, end - m_copied));
    return std::move(m_written);
  }

 private:
  std::string_view m_text;
  std::size_t m_copied;
  std::string m_written;
};

// Whether `text` names the namespace axis anywhere.
bool names_namespace_axis(std::string_view text) {
  for (std::size_t at = text.find("namespace"); at != std::string_view::npos;
       at = text.find("namespace", at + 1)) {
    std::size_t next = at + 9;
    while (next < text.size() && is_ascii_space(static_cast<unsigned char>(text[next]))) {
      ++next;
    }
    if (text.substr(next, 2) == "::") {
      return true;
    }
  }
  return false;
}

// A recursive-descent reader of XPath 1.0's expressions (3.1 to 3.5),
// writing the operators as xpath_with_linear_operators() says.
class Reader {
 public:
  explicit Reader(std::string_view text) : m_text(text), m_tokens(tokenize(text)) {}

  std::string written() {
    if (m_tokens.empty()) {
      throw Unreadable();
    }
    const Part whole = expression();
    if (m_next != m_tokens.size()) {
      throw Unreadable();
    }
    return std::string(m_text.substr(0, whole.begin)) + whole.written +
           std::string(m_text.substr(whole.end));
  }

 private:
  bool at_kind(Kind kind) const {
    return m_next < m_tokens.size() && m_tokens[m_next].kind == kind;
  }
  std::string_view text_of(const Token& token) const {
    return m_text.substr(token.begin, token.end - token.begin);
  }
  // The operator at the next token, if it is one of `ops`.
  std::optional<std::string_view> next_op(std::initializer_list<std::string_view> ops) const {
    if (!at_kind(Kind::op)) {
      return std::nullopt;
    }
    const std::string_view op = text_of(m_tokens[m_next]);
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) {
      return std::nullopt;
    }
    return op;
  }
  const Token& take(Kind kind) {
    if (!at_kind(kind)) {
      throw Unreadable();
    }
    return m_tokens[m_next++];
  }
  std::size_t last_end() const { return m_tokens[m_next - 1].end; }

  // Operators by how tightly they bind, loosest first (3.4, 3.5): the one
  // at the next token if it is of `level`.
  static constexpr int k_levels = 6;
  std::optional<std::string_view> next_op_of(int level) const {
    switch (level) {
      case 0:
        return next_op({"or"});
      case 1:
        return next_op({"and"});
      case 2:
        return next_op({"=", "!="});
      case 3:
        return next_op({"<", "<=", ">", ">="});
      case 4:
        return next_op({"+", "-"});
      default:
        return next_op({"*", "div", "mod"});
    }
  }

  Part expression(int level = 0) {
    if (level == 0 && ++m_depth > k_max_depth) {
      throw Unreadable();
    }
    if (level == k_levels) {
      return unary();
    }
    Part left = expression(level + 1);
    while (const auto op = next_op_of(level)) {
      ++m_next;
      Part right = expression(level + 1);
      left = combined(std::move(left), *op, std::move(right));
    }
    m_depth -= level == 0 ? 1 : 0;
    return left;
  }

  Part combined(Part left, std::string_view op, Part right) const {
    Part part;
    part.begin = left.begin;
    part.end = right.end;
    const bool compares = op == "=" || op == "!=" || op[0] == '<' || op[0] == '>';
    part.type = compares || op == "and" || op == "or" ? Type::boolean : Type::number;
    if (left.nodes() && right.nodes() && compares) {
      // `a > b` holds when some node of b is less than some node of a.
      const bool swapped = op[0] == '>';
      const char* function = op == "="        ? k_equal
                             : op == "!="     ? k_unequal
                             : op.size() == 1 ? k_less
                                              : k_less_or_equal;
      part.written = call_of(
          function, (swapped ? right : left).written + ", " + (swapped ? left : right).written);
      return part;
    }
    // Appended to, not copied: `1 + 1 + ...` is read in time linear in its length.
    part.written = std::move(left.written);
    part.written.append(m_text.substr(left.end, right.begin - left.end));
    part.written += right.written;
    return part;
  }

  // A chain of minus signs is read in a loop: one call each would overflow
  // the stack on `- - - ... 1` (libxml2 reads them in a loop too).
  Part unary() {
    if (!next_op({"-"})) {
      return union_of_paths();
    }
    const std::size_t begin = m_tokens[m_next].begin;
    while (next_op({"-"})) {
      ++m_next;
    }
    Part operand = union_of_paths();
    Splice splice(m_text, begin);
    splice.take(operand);
    return {begin, operand.end, splice.finish(operand.end), Type::number};
  }

  Part union_of_paths() {
    std::vector<Part> sides{path()};
    while (next_op({"|"})) {
      ++m_next;
      sides.push_back(path());
    }
    if (sides.size() == 1) {
      return std::move(sides[0]);
    }
    Part part;
    part.begin = sides.front().begin;
    part.end = sides.back().end;
    part.type =
        std::all_of(sides.begin(), sides.end(), [](const Part& side) { return side.nodes(); })
            ? Type::nodes
            : Type::unknown;
    const bool linear =
        part.nodes() && !names_namespace_axis(m_text.substr(part.begin, part.end - part.begin));
    if (linear) {
      std::string operands;
      for (std::size_t k = 0; k < sides.size(); ++k) {
        operands += (k == 0 ? "" : ", ") + sides[k].written;
      }
      part.written = call_of(k_union, operands);
    } else {
      Splice splice(m_text, part.begin);
      for (const Part& side : sides) {
        splice.take(side);
      }
      part.written = splice.finish(part.end);
    }
    return part;
  }

  bool at_step() const {
    return at_kind(Kind::dot) || at_kind(Kind::dot_dot) || at_kind(Kind::at) ||
           at_kind(Kind::axis) || at_kind(Kind::name_test) || at_kind(Kind::node_type);
  }

  // 3.3: a location path, or a filter expression with the path that may follow it.
  Part path() {
    if (m_next >= m_tokens.size()) {
      throw Unreadable();
    }
    const std::size_t begin = m_tokens[m_next].begin;
    Splice splice(m_text, begin);
    Type type = Type::nodes;
    if (next_op({"/"})) {
      ++m_next;
      if (at_step()) {
        relative_path(splice);
      }
    } else if (next_op({"//"})) {
      relative_path(splice, &m_tokens[m_next++]);
    } else if (at_step()) {
      relative_path(splice);
    } else {
      type = primary(splice);
      for (const Part& predicate : predicates()) {
        splice.take(predicate);
      }
      if (const auto op = next_op({"/", "//"})) {
        const Token& slashes = m_tokens[m_next++];
        // A filter's nodes may be in each other (`(//div)//p`).
        relative_path(splice, *op == "//" ? &slashes : nullptr, false);
        type = Type::nodes;
      }
    }
    const std::size_t end = last_end();
    return {begin, end, splice.finish(end), type};
  }

  // `double_slash`: the `//` before its first step, if that is one;
  // `one_depth`: whether the nodes that step starts from are all as deep in
  // the tree (one node: the context node, the root), none in another.
  void relative_path(Splice& splice, const Token* double_slash = nullptr, bool one_depth = true) {
    step(splice, double_slash, one_depth);
    while (const auto op = next_op({"/", "//"})) {
      const Token& slashes = m_tokens[m_next++];
      step(splice, *op == "//" ? &slashes : nullptr, one_depth);
    }
  }

  // A step; after `double_slash`, a step of the child axis whose predicates
  // do not depend on the position of the nodes they test is written with
  // the descendant axis: `//p[@class='x']` as `/descendant::p[@class='x']`,
  // which selects the same nodes. libxml2 2.9 does so itself only for a
  // step with no predicate; with one, `//` first collects every node of the
  // tree (a node-set as large as the page), then looks at each one's
  // children: about twice the work (`//article[@class='property']` on a
  // listing page of 20 items: 7.8 us, `/descendant::...` 4.4). Only from
  // nodes that are `one_depth` (then false after a step that may select
  // nodes in each other): from nodes in each other the descendant axis
  // tests a node once for each of them, `//` once (`//div//p[count(//b) > 0]` in
  // 1,000 nested <div>: 1,000 times the steps of the predicate).
  void step(Splice& splice, const Token* double_slash, bool& one_depth) {
    if (at_kind(Kind::dot) || at_kind(Kind::dot_dot)) {
      ++m_next;
      one_depth = one_depth && double_slash == nullptr;
      return;
    }
    bool child_axis = true;
    if (at_kind(Kind::axis)) {
      child_axis = false;
      ++m_next;
      take(Kind::colons);
    } else if (at_kind(Kind::at)) {
      child_axis = false;
      ++m_next;
    }
    if (at_kind(Kind::node_type)) {
      ++m_next;
      take(Kind::open_paren);
      if (at_kind(Kind::literal)) {
        ++m_next;
      }
      take(Kind::close_paren);
    } else {
      take(Kind::name_test);
    }
    const std::size_t first_token = m_next;
    const std::vector<Part> tests = predicates();
    const bool from_one_depth = one_depth;
    one_depth = one_depth && double_slash == nullptr && child_axis;
    if (double_slash != nullptr && from_one_depth && child_axis && !tests.empty() &&
        std::all_of(tests.begin(), tests.end(), [](const Part& t) { return !t.positional(); }) &&
        !calls_position_or_last(first_token, m_next)) {
      splice.take({double_slash->begin, double_slash->end, "/descendant::", Type::nodes});
    }
    for (const Part& test : tests) {
      splice.take(test);
    }
  }

  std::vector<Part> predicates() {
    std::vector<Part> read;
    while (at_kind(Kind::open_bracket)) {
      ++m_next;
      read.push_back(expression());
      take(Kind::close_bracket);
    }
    return read;
  }

  // Whether a token in [from, to) calls position() or last().
  bool calls_position_or_last(std::size_t from, std::size_t to) const {
    for (std::size_t k = from; k < to; ++k) {
      if (m_tokens[k].kind == Kind::function &&
          (text_of(m_tokens[k]) == "position" || text_of(m_tokens[k]) == "last")) {
        return true;
      }
    }
    return false;
  }

  // 3.1, 3.2: the primary expression's type.
  Type primary(Splice& splice) {
    if (at_kind(Kind::open_paren)) {
      ++m_next;
      Part inner = expression();
      take(Kind::close_paren);
      splice.take(inner);
      return inner.type;
    }
    if (at_kind(Kind::literal) || at_kind(Kind::number) || at_kind(Kind::variable)) {
      const Kind kind = m_tokens[m_next++].kind;
      return kind == Kind::literal  ? Type::string
             : kind == Kind::number ? Type::number
                                    : Type::unknown;
    }
    const Token& name = take(Kind::function);
    take(Kind::open_paren);
    if (!at_kind(Kind::close_paren)) {
      splice.take(expression());
      while (at_kind(Kind::comma)) {
        ++m_next;
        splice.take(expression());
      }
    }
    take(Kind::close_paren);
    return type_of_function(text_of(name));
  }

  // Expressions nested in brackets, parentheses and arguments that are
  // read; one nested deeper (each level takes a dozen calls of the stack)
  // is left as written.
  static constexpr int k_max_depth = 256;

  std::string_view m_text;
  std::vector<Token> m_tokens;
  std::size_t m_next = 0;
  int m_depth = 0;
};

// ---------------------------------------------------------------------------
// The functions the operators are written as

// The node-sets given to a function, in order, each counted as a step per
// node, as libxml2 counts a node visited. nullopt, with libxml2's error set,
// if there are not `arity` of them (0: any number), an argument is no
// node-set or the steps pass the budget.
std::optional<std::vector<XPathObjectPtr>> node_set_arguments(xmlXPathParserContext* ctxt,
                                                              int nargs, int arity = 0) {
  if (arity != 0 && nargs != arity) {
    xmlXPathErr(ctxt, XPATH_INVALID_ARITY);
    return std::nullopt;
  }
  std::vector<XPathObjectPtr> args;
  for (int i = 0; i < nargs; ++i) {
    args.emplace_back(valuePop(ctxt));
  }
  std::reverse(args.begin(), args.end());
  std::size_t nodes = 0;
  for (const XPathObjectPtr& arg : args) {
    if (!arg || arg->type != XPATH_NODESET) {
      xmlXPathErr(ctxt, XPATH_INVALID_TYPE);
      return std::nullopt;
    }
    nodes += arg->nodesetval == nullptr ? 0 : static_cast<std::size_t>(arg->nodesetval->nodeNr);
  }
  xmlXPathContext* ctx = ctxt->context;
  ctx->opCount += nodes;
  if (ctx->opLimit != 0 && ctx->opCount >= ctx->opLimit) {
    xmlXPathErr(ctxt, XPATH_OP_LIMIT_EXCEEDED);
    return std::nullopt;
  }
  return args;
}

// Whether the text built so far (xml_memory.hpp charges it to the budget),
// or a stop, has used up the evaluation's steps; libxml2's error set if so.
bool out_of_steps(xmlXPathParserContext* ctxt) {
  const xmlXPathContext* ctx = ctxt->context;
  if (ctx->opLimit != 0 && ctx->opCount >= ctx->opLimit) {
    xmlXPathErr(ctxt, XPATH_OP_LIMIT_EXCEEDED);
    return true;
  }
  return false;
}

int size_of(const XPathObjectPtr& set) {
  return set->nodesetval == nullptr ? 0 : set->nodesetval->nodeNr;
}

xmlNode* node_of(const XPathObjectPtr& set, int i) {
  return set->nodesetval->nodeTab[i];
}

// A node's string value as libxml2's comparisons take it: null for a node
// that has none (a document type declaration).
XmlString value_of(xmlNode* node) {
  return XmlString(xmlNodeGetContent(node));
}

std::string_view view_of(const XmlString& value) {
  return {reinterpret_cast<const char*>(value.get()),
          std::strlen(reinterpret_cast<const char*>(value.get()))};
}

// The union of the arguments' node-sets, in document order, each node once,
// as libxml2 gives a union, in time linear in their nodes. No namespace
// node comes here (xpath_with_linear_operators): each node is itself, told
// apart by its address.
void union_function(xmlXPathParserContext* ctxt, int nargs) {
  const auto args = node_set_arguments(ctxt, nargs);
  if (!args) {
    return;
  }
  xmlNodeSetPtr merged = xmlXPathNodeSetCreate(nullptr);
  if (merged == nullptr) {
    xmlXPathErr(ctxt, XPATH_MEMORY_ERROR);
    return;
  }
  std::unordered_set<xmlNode*> seen;
  for (const XPathObjectPtr& arg : *args) {
    for (int i = 0; i < size_of(arg); ++i) {
      if (seen.insert(node_of(arg, i)).second) {
        xmlXPathNodeSetAddUnique(merged, node_of(arg, i));
      }
    }
  }
  sort_in_document_order(merged);
  valuePush(ctxt, xmlXPathWrapNodeSet(merged));
}

// `a = b` for two node-sets (XPath 1.0, 3.4): some node of each has the same
// string value. As libxml2 2.9 has it, a node without a value equals none
// but itself. One set's values are kept, the other's looked up.
void equal_function(xmlXPathParserContext* ctxt, int nargs) {
  auto args = node_set_arguments(ctxt, nargs, 2);
  if (!args) {
    return;
  }
  if (size_of((*args)[0]) > size_of((*args)[1])) {
    std::swap((*args)[0], (*args)[1]);
  }
  const XPathObjectPtr& kept = (*args)[0];
  const XPathObjectPtr& looked_up = (*args)[1];
  std::vector<XmlString> values;
  std::unordered_set<std::string_view> kept_values;
  std::unordered_set<xmlNode*> valueless;
  for (int i = 0; i < size_of(kept); ++i) {
    XmlString value = value_of(node_of(kept, i));
    if (out_of_steps(ctxt)) {
      return;
    }
    if (value == nullptr) {
      valueless.insert(node_of(kept, i));
      continue;
    }
    kept_values.insert(view_of(value));
    values.push_back(std::move(value));
  }
  bool equal = false;
  for (int i = 0; i < size_of(looked_up) && !equal; ++i) {
    const XmlString value = value_of(node_of(looked_up, i));
    if (out_of_steps(ctxt)) {
      return;
    }
    equal = value == nullptr ? valueless.count(node_of(looked_up, i)) != 0
                             : kept_values.count(view_of(value)) != 0;
  }
  valuePush(ctxt, xmlXPathNewBoolean(equal ? 1 : 0));
}

// `a != b` for two node-sets: some node of one and some node of the other
// have different string values, that is both are not empty and their nodes
// have two values between them. As libxml2 2.9 has it, a node without a
// value differs from the nodes whose value is not empty.
void unequal_function(xmlXPathParserContext* ctxt, int nargs) {
  const auto args = node_set_arguments(ctxt, nargs, 2);
  if (!args) {
    return;
  }
  bool unequal = false;
  if (size_of((*args)[0]) > 0 && size_of((*args)[1]) > 0) {
    std::optional<std::string> first;
    for (const XPathObjectPtr& arg : *args) {
      for (int i = 0; i < size_of(arg) && !unequal; ++i) {
        const XmlString value = value_of(node_of(arg, i));
        if (out_of_steps(ctxt)) {
          return;
        }
        const std::string_view text = value == nullptr ? std::string_view() : view_of(value);
        if (!first) {
          first = std::string(text);
        } else {
          unequal = text != *first;
        }
      }
    }
  }
  valuePush(ctxt, xmlXPathNewBoolean(unequal ? 1 : 0));
}

// The least (`least`) or greatest number among the nodes' string values,
// NaN where none is a number (values that are not are left out, as
// libxml2 leaves them out of comparisons). nullopt, with libxml2's error
// set, once out of steps.
std::optional<double> bound_of(xmlXPathParserContext* ctxt, const XPathObjectPtr& set, bool least) {
  double bound = std::numeric_limits<double>::quiet_NaN();
  for (int i = 0; i < size_of(set); ++i) {
    const double value = xmlXPathCastNodeToNumber(node_of(set, i));
    if (out_of_steps(ctxt)) {
      return std::nullopt;
    }
    if (!std::isnan(value) && (std::isnan(bound) || (least ? value < bound : value > bound))) {
      bound = value;
    }
  }
  return bound;
}

// `a < b` (or `a <= b`) for two node-sets: the number of some node of a is
// less than that of some node of b, that is the least of a's is less than
// the greatest of b's.
template <bool or_equal>
void less_function(xmlXPathParserContext* ctxt, int nargs) {
  const auto args = node_set_arguments(ctxt, nargs, 2);
  if (!args) {
    return;
  }
  const auto least = bound_of(ctxt, (*args)[0], true);
  if (!least) {
    return;
  }
  const auto greatest = bound_of(ctxt, (*args)[1], false);
  if (!greatest) {
    return;
  }
  // False when either is NaN.
  const bool less = or_equal ? *least <= *greatest : *least < *greatest;
  valuePush(ctxt, xmlXPathNewBoolean(less ? 1 : 0));
}

// count(): libxml2's with one argument; with more, the operation that the
// last names, on the others (k_union).
void count_function(xmlXPathParserContext* ctxt, int nargs) {
  if (nargs <= 1) {
    xmlXPathCountFunction(ctxt, nargs);
    return;
  }
  const XPathObjectPtr named(valuePop(ctxt));
  const std::string_view operation =
      named && named->type == XPATH_STRING && named->stringval != nullptr
          ? std::string_view(reinterpret_cast<const char*>(named->stringval))
          : std::string_view();
  if (operation == k_union) {
    union_function(ctxt, nargs - 1);
  } else if (operation == k_equal) {
    equal_function(ctxt, nargs - 1);
  } else if (operation == k_unequal) {
    unequal_function(ctxt, nargs - 1);
  } else if (operation == k_less) {
    less_function<false>(ctxt, nargs - 1);
  } else if (operation == k_less_or_equal) {
    less_function<true>(ctxt, nargs - 1);
  } else {
    xmlXPathErr(ctxt, XPATH_INVALID_ARITY);
  }
}

}  // namespace

namespace {

// Whether `node` is kept in an xmlNode (others, as an attribute's xmlAttr or
// the doctype's xmlDtd, have no psvi field where an xmlNode has it).
bool is_plain_node(const xmlNode* node) {
  return node->type == XML_ELEMENT_NODE || node->type == XML_TEXT_NODE ||
         node->type == XML_CDATA_SECTION_NODE || node->type == XML_COMMENT_NODE ||
         node->type == XML_PI_NODE;
}

// The place set_document_place() gave `node`; 0 for the document node; none
// for a node it gave none.
std::optional<std::uintptr_t> document_place(const xmlNode* node) {
  const void* place = nullptr;
  if (node->type == XML_DOCUMENT_NODE || node->type == XML_HTML_DOCUMENT_NODE) {
    return 0;
  }
  if (node->type == XML_ATTRIBUTE_NODE) {
    place = reinterpret_cast<const xmlAttr*>(node)->psvi;
  } else if (is_plain_node(node)) {
    place = node->psvi;
  }
  if (place == nullptr) {
    return std::nullopt;
  }
  return reinterpret_cast<std::uintptr_t>(place);
}

}  // namespace

void set_document_place(xmlNode* node, std::uintptr_t place) {
  if (node->type == XML_ATTRIBUTE_NODE) {
    reinterpret_cast<xmlAttr*>(node)->psvi = reinterpret_cast<void*>(place);
  } else if (is_plain_node(node)) {
    node->psvi = reinterpret_cast<void*>(place);
  }
}

void sort_in_document_order(xmlNodeSet* set) {
  if (set == nullptr || set->nodeNr < 2) {
    return;
  }
  std::vector<std::pair<std::uintptr_t, xmlNode*>> placed;
  placed.reserve(static_cast<std::size_t>(set->nodeNr));
  for (int i = 0; i < set->nodeNr; ++i) {
    const std::optional<std::uintptr_t> place = document_place(set->nodeTab[i]);
    if (!place) {
      xmlXPathNodeSetSort(set);
      return;
    }
    placed.emplace_back(*place, set->nodeTab[i]);
  }
  const auto by_place = [](const auto& a, const auto& b) { return a.first < b.first; };
  if (std::is_sorted(placed.begin(), placed.end(), by_place)) {
    return;
  }
  std::sort(placed.begin(), placed.end(), by_place);
  for (int i = 0; i < set->nodeNr; ++i) {
    set->nodeTab[i] = placed[static_cast<std::size_t>(i)].second;
  }
}

std::string xpath_with_linear_operators(std::string_view expr) {
  try {
    return Reader(expr).written();
  } catch (const Unreadable&) {
    return std::string(expr);
  }
}

bool register_linear_operators(xmlXPathContext* ctx) {
  const auto* count = reinterpret_cast<const xmlChar*>("count");
  // Registering a null function removes libxml2's.
  return xmlXPathRegisterFunc(ctx, count, nullptr) == 0 &&
         xmlXPathRegisterFunc(ctx, count, count_function) == 0;
}

}  // namespace scrapekeep::scrape
