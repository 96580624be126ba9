// DocumentSource: folders of .txt files, single .txt files and JSONL, and each kind of bad input
// named by file and line.
#include "data/document_source.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/testing.h"

namespace moegrad::data {
namespace {

namespace fs = std::filesystem;

class DocumentSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("moegrad_docsrc_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  static std::vector<Document> all(DocumentSource& source) {
    std::vector<Document> out;
    for (Document d; source.next(d);) out.push_back(d);
    return out;
  }

  fs::path dir_;
};

TEST_F(DocumentSourceTest, FolderOfTextFilesInNameOrder) {
  write("docs/open.2.txt", "open a file\n");
  write("docs/ls.1.txt", "list directory contents\n");
  write("docs/empty.1.txt", " \n\n");
  write("docs/notes.md", "not a document");
  write("docs/sub/deeper.txt", "not read: folders are not walked");
  DocumentSource source((dir_ / "docs").string());
  EXPECT_EQ(source.total_bytes(), 12 + 24 + 3);
  std::vector<Document> docs = all(source);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].name, "ls.1");
  EXPECT_EQ(docs[0].text, "list directory contents\n");
  EXPECT_EQ(docs[1].name, "open.2");
  EXPECT_EQ(source.skipped_empty(), 1);
  EXPECT_EQ(source.bytes_read(), source.total_bytes());
}

TEST_F(DocumentSourceTest, SingleTextFile) {
  const std::string path = write("page.txt", "Grüße\n");
  DocumentSource source(path);
  std::vector<Document> docs = all(source);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].name, "page");
  EXPECT_EQ(docs[0].text, "Grüße\n");
}

TEST_F(DocumentSourceTest, JsonlNamesDocumentsByIdOrLine) {
  const std::string path = write("dump.jsonl",
                                 "{\"text\": \"first\", \"id\": \"doc-a\"}\n"
                                 "\n"
                                 "{\"text\": \"second\", \"id\": 42, \"url\": \"x\"}\n"
                                 "{\"text\": \"   \"}\n"
                                 "{\"text\": \"third\\nline\"}\r\n");
  DocumentSource source(path);
  std::vector<Document> docs = all(source);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].name, "doc-a");
  EXPECT_EQ(docs[1].name, "42");
  EXPECT_EQ(docs[1].text, "second");
  EXPECT_EQ(docs[2].name, "dump.jsonl:5");
  EXPECT_EQ(docs[2].text, "third\nline");
  EXPECT_EQ(source.skipped_empty(), 1);
  EXPECT_EQ(source.bytes_read(), source.total_bytes());
}

TEST_F(DocumentSourceTest, JsonlErrorsNameFileAndLine) {
  struct Case {
    const char* line;
    const char* needle;
  };
  for (Case c : {Case{"{\"text\": ", ":2: invalid JSON"}, Case{"{\"id\": 1}", ":2: missing \"text\""},
                 Case{"{\"text\": 5}", ":2: \"text\" is not a string (it is a number)"},
                 Case{"[\"text\"]", ":2: expected a JSON object"},
                 Case{"{\"text\": \"caf\xC3\"}", ":2: invalid UTF-8 (byte 13 of the line)"}}) {
    const std::string path = write("bad.jsonl", std::string("{\"text\": \"fine\"}\n") + c.line + "\n");
    DocumentSource source(path);
    Document doc;
    ASSERT_TRUE(source.next(doc));
    testing::expect_error([&] { source.next(doc); }, path + c.needle);
  }
}

TEST_F(DocumentSourceTest, InvalidUtf8InATextFileNamesTheLine) {
  write("docs/a.txt", "fine\n");
  const std::string bad = write("docs/b.txt", "one\ntwo \xFF\n");
  DocumentSource source((dir_ / "docs").string());
  Document doc;
  ASSERT_TRUE(source.next(doc));
  testing::expect_error([&] { source.next(doc); }, bad + ":2: invalid UTF-8 (byte 8 of the file)");
}

TEST_F(DocumentSourceTest, BadPathsAreNamed) {
  const std::string missing = (dir_ / "missing.jsonl").string();
  testing::expect_error([&] { DocumentSource s(missing); }, missing + " does not exist");
  const std::string csv = write("table.csv", "a,b\n");
  testing::expect_error([&] { DocumentSource s(csv); }, csv + " has an unknown extension");
  const std::string gz = write("dump.jsonl.gz", "\x1f\x8b");
  testing::expect_error([&] { DocumentSource s(gz); }, gz + " is compressed");
  fs::create_directories(dir_ / "empty");
  testing::expect_error([&] { DocumentSource s((dir_ / "empty").string()); }, "holds no .txt file");
}

TEST_F(DocumentSourceTest, UnreadableFileIsNamed) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  const std::string path = write("docs/locked.txt", "secret");
  fs::permissions(path, fs::perms::none);
  DocumentSource source((dir_ / "docs").string());
  Document doc;
  testing::expect_error([&] { source.next(doc); }, "cannot read " + path);
}

// A JSONL file is read a line at a time: a long file streams through one Document.
TEST_F(DocumentSourceTest, JsonlStreams) {
  std::string content;
  for (int i = 0; i < 2000; ++i) content += "{\"text\": \"document " + std::to_string(i) + "\"}\n";
  DocumentSource source(write("many.jsonl", content));
  Document doc;
  int64_t n = 0, last_read = 0;
  while (source.next(doc)) {
    EXPECT_GT(source.bytes_read(), last_read);
    last_read = source.bytes_read();
    ++n;
  }
  EXPECT_EQ(n, 2000);
  EXPECT_EQ(doc.text, "document 1999");
}

}  // namespace
}  // namespace moegrad::data
