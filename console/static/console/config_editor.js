/* The agent configuration editor: json-editor (vendored) on the JSON Schema, with a raw-JSON mode.
 * The form submits the textarea; in structured mode it is filled from the editor just before submit. */
(function () {
  "use strict";
  var ZH = {
    error_notset: "必须设置此属性", error_enum: "值必须是列举值之一", error_anyOf: "值必须符合至少一种允许的格式",
    error_type: "值的类型必须是 {{0}}", error_maximum_incl: "值不能大于 {{0}}", error_minimum_incl: "值不能小于 {{0}}",
    error_maximum_excl: "值必须小于 {{0}}", error_minimum_excl: "值必须大于 {{0}}",
    error_maxLength: "长度不能超过 {{0}} 个字符", error_minLength: "长度不能少于 {{0}} 个字符",
    error_pattern: "值必须匹配模式 {{0}}", error_maxItems: "最多 {{0}} 项", error_minItems: "至少 {{0}} 项",
    error_required: "缺少必填属性“{{0}}”", error_uniqueItems: "各项不能重复",
    button_save: "保存", button_copy: "复制", button_cancel: "取消", button_add: "添加",
    button_delete_all: "全部删除", button_delete_all_title: "全部删除", button_delete_last: "删除最后一个 {{0}}",
    button_delete_last_title: "删除最后一个 {{0}}", button_add_row_title: "添加 {{0}}",
    button_move_down_title: "下移", button_move_up_title: "上移", button_properties: "属性",
    button_object_properties: "对象属性", button_copy_row_title: "复制 {{0}}", button_delete_row_title: "删除 {{0}}",
    button_delete_row_title_short: "删除", button_copy_row_title_short: "复制", button_collapse: "折叠",
    button_expand: "展开", button_edit_json: "编辑 JSON", default_array_item_title: "项目",
    button_delete_node_warning: "确定要删除此节点吗？"
  };

  function init(box) {
    var form = box.closest("form");
    var textarea = box.querySelector("textarea");
    var holder = box.querySelector(".config-editor-holder");
    var modeButton = box.querySelector(".config-editor-mode");
    var serverErrors = box.querySelector(".config-editor-server-errors");
    var schema = JSON.parse(document.getElementById("config-editor-schema").textContent);
    var errors = JSON.parse(document.getElementById("config-editor-errors").textContent);
    var editor = null;

    if (window.JSONEditor && JSONEditor.defaults) {
      JSONEditor.defaults.languages.zh = ZH;
      JSONEditor.defaults.language = (box.dataset.language || "").indexOf("zh") === 0 ? "zh" : "en";
    }

    function parsed() {
      try { var v = JSON.parse(textarea.value || "{}"); return (v && typeof v === "object" && !Array.isArray(v)) ? v : null; }
      catch (e) { return null; }
    }

    function showServerErrors() {
      serverErrors.innerHTML = "";
      errors.forEach(function (e) {
        var li = document.createElement("li");
        li.textContent = (e.path === "root" ? "" : e.path.replace(/^root\./, "") + ": ") + e.message;
        serverErrors.appendChild(li);
      });
      if (editor && errors.length) {
        // At their field: each editor whose path matches shows the server's sentence under its input.
        errors.forEach(function (e) {
          var child = editor.getEditor(e.path);
          var node = child && child.container;
          if (!node) { return; }
          node.classList.add("config-editor-invalid");
          var p = document.createElement("p");
          p.className = "config-editor-field-error errornote";
          p.setAttribute("data-error-path", e.path);
          p.textContent = e.message;
          node.appendChild(p);
        });
      }
    }

    function build(value) {
      holder.innerHTML = "";
      editor = new JSONEditor(holder, {
        schema: schema, startval: value, theme: "html", iconlib: null, disable_edit_json: true,
        disable_properties: false, display_required_only: true, show_opt_in: false, use_default_values: false,
        remove_empty_properties: false, no_additional_properties: false, required_by_default: false,
        show_errors: "interaction", prompt_before_delete: false, use_name_attributes: false, max_depth: 0
      });
      editor.on("ready", function () { showServerErrors(); box.setAttribute("data-editor-ready", "1"); });
    }

    function setMode(mode) {
      box.classList.remove("structured", "raw");
      box.classList.add(mode);
      modeButton.textContent = mode === "structured" ? modeButton.dataset.modeRaw : modeButton.dataset.modeStructured;
      box.setAttribute("data-mode", mode);
    }

    modeButton.addEventListener("click", function () {
      if (box.classList.contains("structured")) {
        textarea.value = JSON.stringify(editor.getValue(), null, 2);
        setMode("raw");
      } else {
        var value = parsed();
        if (value === null) { window.alert(modeButton.dataset.invalid || "Invalid JSON"); return; }
        build(value);
        setMode("structured");
      }
    });

    form.addEventListener("submit", function () {
      if (editor && box.classList.contains("structured")) {
        textarea.value = JSON.stringify(editor.getValue(), null, 2);
      }
    });

    var start = parsed();
    if (window.JSONEditor && start !== null) {
      build(start);
      setMode("structured");
    } else {
      setMode("raw");  // not an object (an earlier raw edit that failed to parse): keep the text as typed
      showServerErrors();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-config-editor]").forEach(init);
  });
})();
